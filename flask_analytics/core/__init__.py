"""The bottom layer: the clock, dialect differences, the rollup SELECTs, day runs and the
protocols the layers above are written against. Imports nothing above models/config."""
