"""Pure numerical kernels of the three cooking steps: numpy in, numpy out, no I/O."""
