"""The benchmark harness behind tools/bench/run.py (issue #9).

Modules:
    prereq     find or install haproxy/nginx/wrk/cc/taskset, build the C tools,
               describe the machine and the versions under test
    procs      start pinned processes, wait for ports, read CPU and RSS from /proc
    scenarios  the SCENARIOS table, generator command lines, output parsers
    report     the results table, JSON file and PNG chart
    png        a tiny PNG writer with a bitmap font (no third-party packages)

Nothing in lb/ imports this package, and it imports nothing from lb/: it runs
`lb` as a program, like HAProxy.
"""
