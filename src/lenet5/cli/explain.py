"""``lenet5 explain TOPIC``: the handout's worked examples, computed live and printed step by step."""

from __future__ import annotations

import argparse
import json

from ..explain import TOPICS

ALL = "all"


def register(subparsers: argparse._SubParsersAction) -> None:
    topics = "\n".join(f"  {name:<14}{description}" for name, (_, _, description) in TOPICS.items())
    parser = subparsers.add_parser("explain", help="compute the handout's worked examples live",
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog=f"topics:\n{topics}\n  {ALL:<14}every topic in turn")
    parser.add_argument("topic", choices=[*TOPICS, ALL], metavar="TOPIC", help="what to explain (see below)")
    parser.add_argument("--json", action="store_true", help="print the computed values as JSON for tools")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..explain import explain

    names = list(TOPICS) if args.topic == ALL else [args.topic]
    lessons = [explain(name) for name in names]
    if args.json:
        payload = [lesson.to_dict() for lesson in lessons]
        print(json.dumps(payload if args.topic == ALL else payload[0], indent=2))
    else:
        print("\n".join(lesson.to_text() for lesson in lessons), end="")
    return 0
