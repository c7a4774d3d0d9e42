"""`python -m fastconv.bench`: see fastconv/bench/__main__.py."""
