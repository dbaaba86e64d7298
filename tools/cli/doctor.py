"""Check the set-up a lab needs: the OS first, then one line per item, ✔ or ✘ with the fix in
that OS's terms; exit 0 only when every required item passes (1 otherwise). Mosquitto is
optional: the embedded broker (amqtt) is the default everywhere.
"""

import json
from dataclasses import asdict

from splitleak.cloud.data import ENV_DIR
from splitleak.tools.cli.options import host_port
from splitleak.tools.deploy.settings import DEMO_WEB


def add_arguments(parser) -> None:
    parser.add_argument("--omniglot-dir", metavar="DIR",
                        help=f"the folder of Omniglot zips to check (default: ${ENV_DIR})")
    parser.add_argument("--web", default=DEMO_WEB, metavar="HOST:PORT",
                        help="where the live page will listen (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print JSON only")


def run(args) -> int:
    from splitleak.tools.labs import doctor

    host = doctor.this_host()
    items = doctor.check_all(args.omniglot_dir, host_port(args.web), host)
    ok = doctor.passed(items)
    print(json.dumps({"passed": ok, "os": asdict(host), "items": [asdict(i) for i in items]},
                     indent=2) if args.json else doctor.render(items))
    return 0 if ok else 1
