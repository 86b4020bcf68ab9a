# fib.py: doubly recursive Fibonacci, fib(30). Prints 832040.
def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


print(fib(30))
