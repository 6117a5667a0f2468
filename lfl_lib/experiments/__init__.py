"""Experiment drivers: the programs that write book/data/. The library never imports them."""
