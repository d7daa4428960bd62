"""Small helpers shared by the operators' tile choices."""


def divisors(n: int) -> list[int]:
    """The divisors of ``n``, ascending: the tile sizes that split an axis of ``n`` exactly."""
    return [d for d in range(1, n + 1) if n % d == 0]
