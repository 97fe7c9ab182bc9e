"""The study tools, registered through the same hooks as any plugin: `dlbench results`, `dlbench leaderboard`,
`dlbench report`, `dlbench sweep` and their benchmarks."""
from dlbench.hookspecs import hookimpl


@hookimpl
def register_commands(subparsers):
    from dlbench import leaderboard, results, sweep

    sweep.add_commands(subparsers)
    results.add_commands(subparsers)
    leaderboard.add_commands(subparsers)


@hookimpl
def register_benchmarks():
    from dlbench.leaderboard.bench import bench_results
    from dlbench.sweep import bench_sweep

    return {"results_query": bench_results, "sweep": bench_sweep}
