# queens.py: counts the 92 solutions of 8-queens, 700 times. The queens
# placed so far are a cons list ((head, tail) tuples, None for the empty
# list) of columns, nearest row first, as in the SX version. Prints 64400.
def safe(col, dist, placed):
    while placed is not None:
        q, placed = placed
        if q == col or q == col + dist or q == col - dist:
            return False
        dist += 1
    return True


def count_from(row, placed, size):
    if row == size:
        return 1
    acc = 0
    for col in range(size):
        if safe(col, 1, placed):
            acc += count_from(row + 1, (col, placed), size)
    return acc


print(sum(count_from(0, None, 8) for _ in range(700)))
