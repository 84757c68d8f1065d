"""What the benchmarks and tests measure with (pair scores, error rates, the calibration's fitting
rule, splits of people, crops). The server never imports it."""
