"""Security-class labs, each an attack → defend → measure arc of about 15 minutes on a laptop
with the embedded broker. Handouts: docs/labs/labN.md; instructor notes: docs/labs/instructor/.

  list      the labs, with their time and tasks
  start N   prepare a working folder for lab N (your variant with --student ID), print task 1
  check N   ✔/✘ per task of lab N in a folder, with a hint per ✘
  run N     run every command of lab N's handout in a started folder (instructors, CI)
  grade DIR...  the instructor's table: per student folder, each task ✔/✘ with its reason, and
            artifacts two folders share (copied); --csv FILE for a spreadsheet
  record N  run lab N for several student ids (--students), write the figures its instructor
            notes quote, per student, with the commit and machine, as JSON (--out)
  docs      rewrite the instructor notes' `<!-- lab:labN -->` tables from the committed records
            (docs/results/labs/labN.json); --check writes nothing and fails when one is out of date
"""

import argparse
import json
import sys
from pathlib import Path

from splitleak.tools.labs import lab


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="lab_command", required=True, metavar="SUBCOMMAND")
    sub.add_parser("list", help="the labs, their time and tasks").set_defaults(_lab=_list)
    p = sub.add_parser("start", help="prepare a lab folder and print the first task")
    p.set_defaults(_lab=_start)
    p.add_argument("n", type=int, metavar="N")
    _dir(p)
    p.add_argument("--student", metavar="ID",
                   help="your student id: seeds, node id, port and images derive from it")
    p.add_argument("--force", action="store_true", help="start even if the folder is not empty")
    p.add_argument("--course-key", metavar="KEY",
                   help=f"the instructor's secret: variants and passwords derive from it "
                        f"(default: ${lab.ENV_COURSE_KEY}, else the public self-study key)")
    p.add_argument("--size", choices=lab.SIZES, default="full",
                   help="full: the lab as handed out; short: tiny training runs (CI, a dry run)")
    p.add_argument("--omniglot-dir", metavar="DIR", help="folder with the upstream Omniglot zips "
                   "(default: $SPLITLEAK_OMNIGLOT_DIR)")
    p = sub.add_parser("check", help="check a lab folder, task by task")
    p.set_defaults(_lab=_check)
    p.add_argument("n", type=int, metavar="N")
    _dir(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p = sub.add_parser("run", help="run every command of the handout in a started lab folder")
    p.set_defaults(_lab=_run)
    p.add_argument("n", type=int, metavar="N")
    _dir(p)
    p = sub.add_parser("record", help="run lab N for several students and record the figures "
                       "its instructor notes quote")
    p.set_defaults(_lab=_record)
    p.add_argument("n", type=int, metavar="N")
    p.add_argument("--students", nargs="+", required=True, metavar="ID",
                   help="student ids: the first is the reference run, the others give the spread")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="the JSON to write")
    p.add_argument("--size", choices=lab.SIZES, default="full",
                   help="full: the lab as handed out (the notes' figures); short: a dry run")
    p.add_argument("--omniglot-dir", metavar="DIR", help="folder with the upstream Omniglot zips "
                   "(default: $SPLITLEAK_OMNIGLOT_DIR)")

    p = sub.add_parser("grade", help="per student folder: each task ✔/✘ with its reason")
    p.set_defaults(_lab=_grade)
    p.add_argument("folders", nargs="+", type=Path, metavar="DIR", help="students' lab folders")
    p.add_argument("--csv", type=Path, metavar="FILE", help="also write the table as CSV")
    p.add_argument("--course-key", metavar="KEY",
                   help="also check each lab.json is the variant this key gives its student "
                        "(task 0); default: $SPLITLEAK_COURSE_KEY if set")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")

    p = sub.add_parser("docs", help="the instructor notes' figures, from docs/results/labs")
    p.set_defaults(_lab=_docs)
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 when a block is out of date")


def _dir(p) -> None:
    p.add_argument("--dir", type=Path, metavar="DIR",
                   help="the lab folder (default: this folder if it is lab N's, else ./labN)")


def run(args) -> int:
    if getattr(args, "n", None) is not None:
        lab.check_lab(args.n)
        if "dir" in vars(args) and args.dir is None:
            args.dir = Path(f"lab{args.n}") if args._lab is _start else _here_or_default(args.n)
    return args._lab(args)


def _here_or_default(n: int) -> Path:
    """This folder when it is lab n's (commands run inside it), else ./labN."""
    try:
        lab.load(Path("."), n)
    except ValueError:
        return Path(f"lab{n}")
    return Path(".")


def _list(args) -> int:
    for n, title in lab.TITLES.items():
        steps = lab.tasks(n)
        print(f"lab {n}: {title} ({sum(t.minutes for t in steps)} min, {len(steps)} tasks) — "
              f"{lab.handout(n).relative_to(lab.HANDOUTS.parents[1])}")
    return 0


def _start(args) -> int:
    v = lab.start(args.n, args.dir, args.student, args.force, args.size, args.omniglot_dir,
                  args.course_key)
    first = lab.tasks(args.n)[0]
    print(f"lab {args.n} ready in {args.dir}/ for student {v['student']} (node {v['node']}, "
          f"broker port {v['port']}, seed {v['seed']}).\nHandout: {lab.handout(args.n)}\n"
          f"First: cd {args.dir}\n\n{first.text}")
    return 0


def _check(args) -> int:
    from splitleak.tools.labs import checks as lab_checks

    v = lab.load(args.dir, args.n)
    steps = {t.number: t for t in lab.tasks(args.n)}
    results = lab_checks.run(args.n, args.dir, v)
    if args.json:
        print(json.dumps({"lab": args.n, "student": v["student"], "tasks": [
            {"task": k, "title": steps[k].title, "ok": hint is None, "hint": hint}
            for k, hint in results]}))
    else:
        for k, hint in results:
            print(f"✔ task {k}: {steps[k].title}" if hint is None else
                  f"✘ task {k}: {steps[k].title} — {hint}")
    return 0 if all(hint is None for _, hint in results) else 1


def _run(args) -> int:
    """The handout's commands in order, in one bash (set -e): background servers included,
    and stopped when the script ends."""
    code = lab.run_script(args.n, args.dir)
    if code:
        print(f"splitleak lab run: lab {args.n} stopped: a command exited {code}", file=sys.stderr)
    return code


def _record(args) -> int:
    from splitleak.tools.labs import record

    try:
        record.record(args.n, args.students, args.out, args.size,
                      omniglot_dir=args.omniglot_dir)
    except RuntimeError as exc:
        print(f"splitleak lab record: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: lab {args.n}'s figures for {len(args.students)} students")
    return 0


def _grade(args) -> int:
    import os

    from splitleak.tools.labs import grade

    rows = grade.grade(args.folders, args.course_key or os.environ.get(lab.ENV_COURSE_KEY))
    print(json.dumps(rows, indent=1) if args.json else grade.render(rows))
    if args.csv:
        grade.write_csv(rows, args.csv)
        print(f"wrote {args.csv}", file=sys.stderr)
    return 0


def _docs(args) -> int:
    from splitleak.tools.labs import docs

    done = docs.render_files(check=args.check)
    print(docs.describe(done))
    return 0 if done["passed"] else 1
