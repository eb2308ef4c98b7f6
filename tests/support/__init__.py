"""Helpers the tests (and bench/) import: daemons in subprocesses, the ncnn peer, reference networks."""
