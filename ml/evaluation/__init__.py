"""What the benchmarks and tests measure with (pair scores, error rates, the calibration's fitting
rule, splits of people, crops, generated videos). The server never imports it."""
