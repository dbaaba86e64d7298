"""Options several commands share; each default comes from the library's own definition."""

from pathlib import Path

from splitleak.broker.urls import DEFAULT_MQTT, MQTT_VERSIONS
from splitleak.cloud.config import DEFAULT_SPLIT, SPLITS
from splitleak.cloud.data import ENV_DIR
from splitleak.cloud.rundir import default_run_dir
from splitleak.edge.defences import SPECS as DEFENSE_SPECS

BROKER_HELP = ("mqtt://[user:pass@]host:port or mqtts://…; without user:pass the login comes from "
               "$SPLITLEAK_MQTT_USER and $SPLITLEAK_MQTT_PASSWORD when set (off the command line, "
               "which every local user can read)")


def add_data_options(parser) -> None:
    parser.add_argument("--omniglot-dir", metavar="DIR",
                        help=f"folder with the upstream Omniglot zips (default: ${ENV_DIR}, "
                             "else tensorflow-datasets, which downloads when online)")


def add_max_nodes_option(parser) -> None:
    from splitleak.broker.inbox import MAX_NODES

    parser.add_argument("--max-nodes", type=int, default=MAX_NODES, metavar="N",
                        help=f"keep per-node state for at most N nodes, forgetting the least "
                             f"recently seen (a flood of fake node ids stays bounded; default "
                             f"{MAX_NODES})")


def add_mqtt_option(parser, help: str = "MQTT version") -> None:
    parser.add_argument("--mqtt", choices=MQTT_VERSIONS, default=DEFAULT_MQTT,
                        help=f"{help} (default {DEFAULT_MQTT})")


def add_broker_options(parser, login: str, required: bool = True) -> None:
    """--broker, --ca, --mqtt and --credentials: how a node reaches the broker.

    `login` says whom --credentials logs in as (shown in the help).
    """
    parser.add_argument("--broker", required=required, metavar="URL", help=BROKER_HELP)
    parser.add_argument("--ca", metavar="FILE", help="CA certificate for mqtts:// (verified)")
    add_mqtt_option(parser, "MQTT version; with 5 the broker says why it refuses a publish or "
                            "subscription")
    parser.add_argument("--credentials", metavar="FILE",
                        help="the broker's credentials.json (user -> password, written by "
                             f"`splitleak broker` into its --dir): log in as {login}, "
                             "replacing any user:pass in the URL")


def broker_from(args) -> str:
    """--broker with its login from the environment where the URL names no user."""
    from splitleak.broker import urls

    return urls.login_from_env(args.broker).full()


def credentials_from(args) -> dict[str, str] | None:
    """The --credentials file's user -> password map, or None without the option."""
    from splitleak.broker import urls

    return urls.read_credentials(args.credentials) if args.credentials else None


def add_defense_option(parser, what: str = "defences on each activation", seed: bool = False) -> None:
    """--defense SPEC (the chain edge/defences.py applies to each frame), with --defense-seed."""
    parser.add_argument("--defense", metavar="SPEC", help=f"{what}: {DEFENSE_SPECS}")
    if seed:
        parser.add_argument("--defense-seed", type=int, metavar="N",
                            help="seed of the defence noise (default: fresh)")


def add_run_options(parser, what: str) -> None:
    """--run RUN_DIR and --split-after K, for the commands that use a trained run."""
    parser.add_argument("--run", metavar="RUN_DIR", type=Path,
                        help=f"{what} (default: {default_run_dir()}, or {default_run_dir()}-k<K> "
                             "with --split-after)")
    parser.add_argument("--split-after", type=int, choices=SPLITS, metavar="K",
                        help=f"the split depth, 1..4 (default: RUN_DIR's, else {DEFAULT_SPLIT})")


def host_port(text: str, option: str = "--web") -> tuple[str, int]:
    """HOST:PORT, or ValueError naming the option and the expected form."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{option} expects HOST:PORT such as 127.0.0.1:8088, got {text!r}")
    return host, int(port)


def positive(**values) -> None:
    """ValueError for the first option given as less than 1."""
    for name, value in values.items():
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
