COMPUTES = False  # runs, records, shows or checks chapters: not part of the code version (runs.code_hash)
