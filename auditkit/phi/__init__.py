"""PHI detection for the ``phi`` check: rules, recognizers, engine, normalisation, reuse.

Layout (each module owns one thing and imports nothing heavy at module level):

- :mod:`auditkit.phi.rules`       loads and validates ``rules/phi/*.yaml`` (recognizers,
  allow-lists, the entity -> category mapping).
- :mod:`auditkit.phi.spans`       the typed span, overlap merging, allow-list filtering.
- :mod:`auditkit.phi.recognizers` the recognizers that need code (checksums, dates,
  ages, name forms) and the registry that combines them with the YAML ones.
- :mod:`auditkit.phi.engine`      model resolution and hashing, the per-process engine
  cache and the batch function the executor runs.
- :mod:`auditkit.phi.normalize`   one canonical form per value, for source matching.
- :mod:`auditkit.phi.reuse`       the keyed-hash index of source identifiers.

Presidio and spaCy are imported only inside functions, so importing auditkit stays light.
"""
