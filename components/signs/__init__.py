"""The isolated-signs recipe's pipeline steps (`pipelines/isolated_signs.py`): `plan` (the fold
plan), `train` (one fold), `export` (the fold models into one TFLite bundle), `evaluate` and
`gate`; each calls into `signpipe.signs`. Validation, publishing and the corpus head are shared
steps at the top of `components/`."""
