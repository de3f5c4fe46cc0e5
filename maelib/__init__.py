"""maelib: the models, trainings and records of the MAE study, in five layers.

Each module imports only from its own layer and the ones below it (``tests/test_layers.py`` reads every
import, those inside functions too, and fails on an upward import or a circle):

1. **core**: masking, tokens, mae, heads, metrics, stats, files, the data loaders, training (``train``,
   ``precision``), the parameters (``profiles``), the record's shapes (``report``), the paper's and other
   papers' numbers, the figures' helpers (``viz``), and ``progress``, a side channel that writes epoch
   reports and reads nothing of the registry;
2. **recipes**: one module per modality (images, series, forecast, segmentation, volumes, tabular), when
   MAE pretraining pays (``payoff``), the reference model, the masking widgets and the in-browser model;
3. **records**: the run registry, code versions, provenance and checkpoint folders (``provenance``), and
   which learning rates a run reuses (``tuning``);
4. **runner**: the catalog of chapters (``catalog``: each chapter's preflight, tuned arms, data, claims),
   papermill (``runs``), runs side by side (``jobs``), the device import, the time estimates from the
   records (``estimates``) and the browser checks;
5. **study and book**: the summary, its tables, the payoff curves' crossover over seeds (``crossover``), the
   book, and the command line (``__main__``), which drives every layer.

A chapter's code version is what its notebook reaches through these imports
(:func:`maelib.provenance.version`): a change elsewhere does not split its seeds.
"""

LAYERS = (
    ("core", {"masking", "tokens", "mae", "heads", "metrics", "stats", "files", "data", "train", "budgets", "precision",
              "progress", "profiles", "report", "paper", "published", "viz"}),
    ("recipes", {"images", "series", "forecast", "segmentation", "volumes", "tabular", "payoff", "reference",
                 "widgets", "webmodel"}),
    ("records", {"provenance", "tuning"}),
    ("runner", {"catalog", "runs", "jobs", "device", "estimates", "browser"}),
    ("study and book", {"summary", "claim_tables", "crossover", "book", "__main__"}),
)
