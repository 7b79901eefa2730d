"""Grammar benchmark: the offline agent's parse of adversarial messages of the maximum length.

    .venv/bin/python -m bench.grammar_bench [--rounds 20]

The messages are the ones ``tests/agent/test_grammar.py`` parses (ADVERSARIAL, 10,000 characters each, the
``maxLength`` of ``send_chat_message``'s ``message``): the test shows each parse ends with the right outcome,
this script measures how long it takes. Reported per message: min / median / max of ``parse`` over the rounds.
Then the city pattern of §8.3 before and after, on ``"hotel in " * k + "!"`` at 2,500 / 5,000 / 10,000
characters: Python ``re`` running the published pattern (quadratic: doubling the length about quadruples the
time) against ``find_city`` (linear). In-process and single-threaded; times are wall clock, so machine load
only ever adds to them, and the minimum is the figure to compare.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time

from tests.agent.test_grammar import ADVERSARIAL, MAX_MESSAGE
from voyagent.agent.grammar import CITY_PATTERN, find_city, parse


def _times(call, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _row(label: str, times: list[float]) -> str:
    return f"{label:<62} min {min(times):8.3f} ms  p50 {statistics.median(times):8.3f} ms  max {max(times):8.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    print(f"parse() of adversarial messages of {MAX_MESSAGE} characters, {args.rounds} rounds")
    worst = 0.0
    for name, (message, _) in ADVERSARIAL.items():
        times = _times(lambda m=message: parse(m), args.rounds)
        worst = max(worst, statistics.median(times))
        print(_row(name, times))
    print(f"worst median: {worst:.3f} ms")

    print("\nthe city pattern (§8.3) on 'hotel in ' * k + '!'")
    published = re.compile(CITY_PATTERN, re.IGNORECASE)
    for length in (MAX_MESSAGE // 4, MAX_MESSAGE // 2, MAX_MESSAGE):
        text = ("hotel in " * (length // 9 + 1))[:length - 1] + "!"
        before = _times(lambda t=text: published.search(t), max(3, args.rounds // 4))
        after = _times(lambda t=text: find_city(t), args.rounds)
        print(_row(f"n={length} Python re, published pattern", before))
        print(_row(f"n={length} find_city", after))


if __name__ == "__main__":
    main()
