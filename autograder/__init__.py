"""Check library and tools of the auto-graded CNN course.

Importing this package imports neither PyTorch nor TensorFlow: the framework adapters in
:mod:`autograder.backends` load them on first use, so a student with only one framework
installed can run every visible check of their track.
"""

__version__ = "0.1.0"
