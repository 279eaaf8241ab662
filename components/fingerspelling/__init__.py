"""The fingerspelling recipe's pipeline steps (`pipelines/fingerspelling.py`): `preprocess`
(feature shards), `pretrain`, `finetune`, `align`, `noisy_student`, `distill`, `export` (TFLite),
`evaluate` and `gate`; each calls into the library's fingerspelling code. Validation, the y-scale
estimate, publishing and the corpus head are shared steps at the top of `components/`."""
