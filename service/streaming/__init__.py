"""Live cameras: stream processors as a kind of long-running work (service/background/). A
replica's worker claims a running processor, reads its camera continuously in a thread of its
own, analyses the newest frame at the sampling interval and writes one record per frame with
faces to the processor's output, in Rekognition's schema."""
