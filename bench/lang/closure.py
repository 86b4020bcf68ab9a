# closure.py: transitive closure of a 300-node graph by naive Datalog
# saturation, computed 20 times from scratch; the same algorithm as
# closure.sx with a dict per node as the set of reachable nodes (keys are
# copied before a node's dict is extended). Prints 1800000.
N = 300
SUCC = [((i * 7 + 1) % N, (i * 13 + 5) % N) for i in range(N)]


def extend(d):
    changed = False
    for y in list(d):
        for z in SUCC[y]:
            if z not in d:
                d[z] = True
                changed = True
    return changed


def closure():
    reach = [{s: True for s in SUCC[i]} for i in range(N)]
    changed = True
    while changed:
        changed = False
        for x in range(N):
            if extend(reach[x]):
                changed = True
    return sum(len(d) for d in reach)


print(sum(closure() for _ in range(20)))
