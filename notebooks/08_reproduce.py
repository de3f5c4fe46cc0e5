# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Reproduce this book
#
# Every chapter of this book was built by one run, and that run left a record beside the executed
# chapter (a `*.run.json`, written by `maelib.runs` only once the chapter finished): in `book/executed/`
# for a run made for this build, in `results/executed/full/` for a full-profile run made on a GPU and
# committed, in `results/executed/quick/` for the first seed of the quick sweep behind a chapter's verdict,
# committed with its records (a build shows it without training the chapter again while its notebook and
# code are unchanged). This page reads the records of the executions the book shows and says, for each chapter,
# what it ran with, where, when and for how long, which Python and packages it ran on, and the commands
# that run it again.

# %% tags=["parameters"]
profile = "auto"  # only labels this build: each chapter's own profile is read from its record
executed_dir = None  # the executed chapters' folder with their run records (default: book/executed)
committed_dir = None  # the committed GPU executions (default: results/executed)

# %% tags=["remove-cell"]
import datetime as dt
import json
import shlex
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from maelib import book, profiles, provenance, summary, viz

p = profiles.resolve_namespace("reproduce", globals())
glue("params", vars(p), display=False)
folder = Path(p.executed_dir) if p.executed_dir else provenance.EXECUTED
NOT_RECORDED = "not recorded"

# the record of the execution the book shows of every other chapter (a committed full-profile one made on a
# GPU, a committed one of the sweep behind the verdict, or the local one), in the book's order
records = [ex.record for ex in book.shown(folder, Path(p.committed_dir) if p.committed_dir else provenance.COMMITTED,
                                          profile=p.profile).values()]


def when(record) -> str:
    """The record's finishing time as 'YYYY-MM-DD HH:MM' (UTC where the record says so)."""
    text = record.get("finished")
    try:
        t = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return text or NOT_RECORDED
    if t.tzinfo is None:
        return t.strftime("%Y-%m-%d %H:%M")
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def seeds(record) -> str:
    """The seed a run started from, and the range when the chapter trains several seeds in one run."""
    seed = record.get("seed")
    if seed is None:
        return "none"
    n = (record.get("resolved") or {}).get("seeds")
    return f"{seed}-{seed + n - 1}" if isinstance(n, int) and n > 1 else str(seed)


def environment(record):
    env = record.get("environment")
    return env if isinstance(env, dict) and env else None


# %% tags=["remove-cell"]
# Environments: the distinct ones, each with the chapters that ran in it.
distinct: dict[str, list[str]] = {}
for r in records:
    if environment(r):
        distinct.setdefault(json.dumps(environment(r), sort_keys=True), []).append(r["chapter"])
labels = {key: (f"environment {chr(ord('A') + i)}" if len(distinct) > 1 else "recorded")
          for i, key in enumerate(distinct)}
env_label = {r["chapter"]: labels[json.dumps(environment(r), sort_keys=True)] if environment(r) else NOT_RECORDED
             for r in records}
missing_env = [r["chapter"] for r in records if not environment(r)]

rows = []
for r in records:
    wall = r.get("wall_s")
    rows.append({"chapter": r["chapter"], "profile": r.get("profile") or NOT_RECORDED,
                 "device": r.get("device") or NOT_RECORDED, "finished": when(r),
                 "commit": (r.get("git_commit") or NOT_RECORDED)[:10], "engine": r.get("engine") or NOT_RECORDED,
                 "seeds": seeds(r), "wall time (min)": round(wall / 60, 2) if wall is not None else None,
                 "environment": env_label[r["chapter"]]})
table = pd.DataFrame(rows, columns=["chapter", "profile", "device", "finished", "commit", "engine", "seeds",
                                    "wall time (min)", "environment"])
# on the page, narrower: a date that does not wrap (non-breaking hyphens and space, the zone in the header) and
# short commits
shown_table = table.assign(finished=[t.replace(" UTC", "").replace("-", "\u2011").replace(" ", "\u00a0")
                                     for t in table["finished"]], commit=[c[:8] for c in table["commit"]])
shown_table = shown_table.rename(columns={"finished": "finished (UTC)", "wall time (min)": "wall (min)",
                                          "seeds": "seed"})  # one seed, or the range a run trains ("0-4")
shown_table["seed"] = shown_table["seed"].replace("none", "–")  # a chapter that trains nothing
shown_table["wall (min)"] = [f"{v:.1f}" if v is not None and v == v else v for v in shown_table["wall (min)"]]
shown_table["device"] = [d.replace(" ", "\u00a0") for d in shown_table["device"]]  # "not recorded" on one line
# a column with one value for every chapter goes into the caption, so that the table fits the page
same = {c: shown_table[c].iloc[0] for c in ("profile", "device", "commit", "engine", "environment")
        if len(shown_table) > 1 and shown_table[c].nunique() == 1}
shown_table = shown_table.drop(columns=list(same))
total_s = sum(r.get("wall_s") or 0 for r in records)
glue("n_chapters", len(records), display=False)
glue("total_min", round(total_s / 60, 1), display=False)
glue("chapters", table.style.hide(axis="index").format({"wall time (min)": "{:.2f}"}, na_rep=NOT_RECORDED)
     .set_properties(**{"text-align": "left", "font-size": "0.85em"}), display=False)

names = ["python", *provenance.PACKAGES]
names += sorted({k for key in distinct for k in json.loads(key)} - set(names))
env_table = pd.DataFrame({f"{labels[key] if len(distinct) > 1 else 'version'}: {', '.join(chapters)}":
                          [json.loads(key).get(n, "not installed") for n in names]
                          for key, chapters in distinct.items()}, index=pd.Index(names, name="package"))
if env_table.empty:
    env_table = pd.DataFrame({"version": [NOT_RECORDED]}, index=pd.Index(["python and packages"], name="package"))
glue("environments", env_table.style.set_properties(**{"text-align": "left", "font-size": "0.85em"}), display=False)
glue("n_environments", len(distinct), display=False)
glue("env_missing", ", ".join(missing_env) if missing_env else "none", display=False)

# %% [markdown]
# ## What ran
#
# The {glue:text}`n_chapters` chapters before this page ran for {glue:text}`total_min` minutes in all.

# %% tags=["remove-input"]
WHAT = {"profile": "profile {}", "device": "device {}", "commit": "git commit {}", "engine": "engine {}",
        "environment": "the environment {} in the table below"}
every = ", ".join(WHAT[c].format(v.replace("\u00a0", " ")) for c, v in same.items())
viz.show_table(shown_table.set_index("chapter").astype(object).fillna(NOT_RECORDED),
               "Each chapter's run: when it finished, its seed (or the range of seeds it trains) and wall time"
               + "".join(f", its {c}" for c in ("profile", "device", "commit", "engine", "environment")
                         if c in shown_table)
               + (f"; every chapter: {every}" if every else "")
               + ". A commit is the one checked out (the record does not say whether the working tree had "
               "uncommitted changes)"
               + ("; the engine 'script', in records of earlier versions, ran a chapter as a plain script."
                  if "engine" in shown_table else "."), "reproduce-chapters")

# %% [markdown]
# A row per chapter: the run this book shows, with what is needed to make it again; the commands below
# repeat each one.
#
# ## The environment
#
# The Python and package versions recorded by each run. Chapters whose records differ are shown side by
# side, each environment with the chapters that ran in it. Chapters recorded before runs stored their
# environment: {glue:text}`env_missing`. Distinct environments recorded: {glue:text}`n_environments`.

# %% tags=["remove-input"]
viz.show_table(env_table, "Python and package versions of the runs.", "reproduce-environment")

# %% [markdown]
# `requirements.txt` pins the versions a fresh `make book` installs (Python 3.11).

# %% tags=["remove-cell"]
# The commands: the whole book, then each chapter as its record says it ran, then the seed sweeps.


def arg(value) -> str:
    """A parameter's value as `python -m maelib run -p NAME VALUE` reads it back (maelib.__main__._value)."""
    if isinstance(value, bool):
        text = str(value).lower()
    elif value is None:
        text = "none"
    elif isinstance(value, str):
        text = value
    else:
        text = repr(value)
    return shlex.quote(text)


def command(r) -> str:
    params = dict(r.get("parameters") or {})
    params.pop("profile", None)
    if r.get("seed") is not None:
        params["seed"] = r["seed"]
    words = [f"python -m maelib run {r['chapter']} --profile {r.get('profile') or 'auto'}"]
    words += [f"-p {name} {arg(value)}" for name, value in params.items()] + ["--no-book"]
    lines = [words[0]]
    for word in words[1:]:
        if len(lines[-1]) + len(word) < 72:  # the page's code block shows about 80 characters
            lines[-1] += f" {word}"
        else:  # a continued line: one wider than the page's code block would scroll
            lines[-1] += " \\"
            lines.append(f"    {word}")
    return "\n".join(lines)


commits = sorted({r["git_commit"] for r in records if r.get("git_commit")})
used_profiles = sorted({r.get("profile") for r in records if r.get("profile")})
lines = []
if len(commits) == 1:
    lines += ["# the commit every chapter ran at", f"git checkout {commits[0]}"]
elif commits:
    lines += ["# the chapters ran at different commits: check out each one's", "# before running it"]
if len(used_profiles) == 1:
    lines += ["", "# the whole book at the profile the chapters ran at,", "# each chapter with its default parameters",
              f"make book PROFILE={used_profiles[0]}"]
else:
    lines += ["", "# the whole book at the default profile (quick on a CPU, full with CUDA)", "make book"]
lines += ["", "# or chapter by chapter, with the parameters and seed each one ran with,",
          "# then this page and the book"]
for r in records:
    if len(commits) > 1:
        lines.append(f"# {r['chapter']} ran at commit {r.get('git_commit') or NOT_RECORDED}")
    lines.append(command(r))
lines.append(f"python -m maelib run reproduce --profile {p.profile}"
             + (f" -p executed_dir {arg(p.executed_dir)}" if p.executed_dir else ""))
commands = "\n".join(lines)
glue("commands", commands, display=False)

registry = summary.load()


def verdict_seeds(chapter: str, profile: str) -> list[int]:
    """The seeds of the groups the summary judges for this chapter's claims (Table 3's 20, say); for a
    chapter of no claim (when MAE pays), those of its default-parameter runs; or []."""
    groups = [summary.judged_group(registry, c.chapter, profile, c.key) for c in summary.CLAIMS if c.chapter == chapter]
    if not groups:
        return sorted({r["seed"] for r in registry if r["chapter"] == chapter and r["profile"] == profile
                       and provenance.is_default(r)})
    seeds = sorted({s for g in groups if g for s in g["seeds"]})
    return seeds if len(seeds) >= summary.MIN_SEEDS else []


def seed_words(seeds: list[int]) -> str:
    """``0 1 2``, or bash's ``{0..19}`` for a longer run of consecutive seeds (a line that fits the page)."""
    if len(seeds) > 5 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{{{seeds[0]}..{seeds[-1]}}}"
    return " ".join(map(str, seeds))


sweeps = []
for r in records:
    if "seed" in profiles.SPECS.get(r["chapter"], {}) and r.get("seed") is not None:
        profile = r.get("profile") or "auto"
        seeds = verdict_seeds(r["chapter"], profile) or range(r["seed"], r["seed"] + summary.MIN_SEEDS)
        sweeps.append(f"python -m maelib sweep {r['chapter']} --publish --profile {profile} --seeds {seed_words(list(seeds))}")
glue("sweep_commands", "\n".join(sweeps), display=False)
ratio_sweeps = summary.ratio_commands(summary.ratio_frame(registry))

# %% [markdown]
# ## Run it again
#
# From a clone of the repository, with the datasets where the loaders look for them (`MAELIB_DATA`,
# see the README's Data section). `make book` creates the virtualenv from `requirements.txt`; the
# chapter commands run inside it (`source .venv/bin/activate`). Add `--force` to rerun a chapter whose
# notebook, parameters and library have not changed since its last run.

# %% tags=["remove-input"]
display(Markdown(f"```bash\n{commands}\n```" if records else
                 ":::{note}\nNo chapter has been run yet: there is no run record in this book's executed folder. "
                 "`make book` runs them all.\n:::"))

# %% [markdown]
# The summary's verdicts compare several seeds of the same setting. These commands record them for each
# chapter that has a seed: the seeds its judged verdict pools (twenty for Table 3, where the power
# calculation asked for more than five), or five from the seed it ran with where none is recorded yet.
# With `--publish` each run joins the committed run registry in `results/runs/`; without it, the local one
# in `results/local/`, which git ignores. The summary chapter reads both:

# %% tags=["remove-input"]
display(Markdown(f"```bash\n{chr(10).join(sweeps)}\n```" if sweeps else "No chapter with a seed has been run."))

# %% [markdown]
# The summary's mask-ratio curves are the default setting with one parameter changed, the MAE's mask
# ratio; these commands record their points again (each line's comment: the hours its recorded runs took,
# their wall times summed, one thread a run):

# %% tags=["remove-input"]
display(Markdown("```bash\n" + "\n".join(f"# {hours:.1f} h of runs\n{line}" for line, hours in ratio_sweeps) + "\n```"
                 if ratio_sweeps else "No mask-ratio sweep is recorded yet."))

# %% tags=["remove-cell"]
glue("results", {
    "n_chapters": len(records), "total_wall_min": round(total_s / 60, 2), "n_environments": len(distinct),
    "environment_missing": missing_env,
    "chapters": {row["chapter"]: {k: row[k] for k in ("profile", "device", "finished", "commit", "engine", "seeds",
                                                       "wall time (min)", "environment")} for row in rows},
    "environments": {labels[key]: {"chapters": chapters, **json.loads(key)} for key, chapters in distinct.items()},
}, display=False)
