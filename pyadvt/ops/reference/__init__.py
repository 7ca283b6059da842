"""Pure-PyTorch references of every kernel: the test oracle, the benchmark baseline and the
fall-back when the compiled extension is absent. One module per op family."""

__all__: list[str] = []  # the public names are the submodules
