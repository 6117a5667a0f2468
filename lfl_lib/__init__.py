"""lfl_lib: the library behind the executable textbook of *Learning from a Learner*.

Jacq, Geist, Paiva and Pietquin, "Learning from a Learner", ICML 2019.
One small module per idea; each chapter of the book explains and calls one of them.
"""

__version__ = "0.1.0"
