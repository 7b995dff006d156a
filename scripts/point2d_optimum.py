#!/usr/bin/env python3
"""Expected return on point2d (thesis Appendix B.3) of the optimal policy (full speed to the
origin, a = -clip(s, 0.1)) and of standing still, over uniform starts in [-2, 2]^2.

Usage: python3 scripts/point2d_optimum.py [episodes]   (prints: optimal, standing still)
"""
import random
import sys


def main(episodes: int) -> None:
    random.seed(0)
    clip = lambda x: max(-0.1, min(0.1, x))
    optimal, still = 0.0, 0.0
    for _ in range(episodes):
        s = [random.uniform(-2, 2), random.uniform(-2, 2)]
        still -= 30 * (s[0] ** 2 + s[1] ** 2)
        for _ in range(30):
            optimal -= s[0] ** 2 + s[1] ** 2
            s = [s[0] + clip(-s[0]), s[1] + clip(-s[1])]
    print(f"{optimal / episodes:.3f} {still / episodes:.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
