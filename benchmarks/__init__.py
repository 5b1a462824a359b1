"""tabstream benchmarks: each module has ``main(argv)`` and writes results/<name>.json + .md."""
