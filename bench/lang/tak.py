# tak.py: Takeuchi's function, tak(18, 12, 6) computed 600 times. Prints
# the sum of the results, 4200.
def tak(x, y, z):
    if not (y < x):
        return z
    return tak(tak(x - 1, y, z), tak(y - 1, z, x), tak(z - 1, x, y))


print(sum(tak(18, 12, 6) for _ in range(600)))
