"""The results store. Run records (`record.json`) are the source of truth; an SQLite index over them,
`RESULT_DIR/.dlbench-index.sqlite`, holds them as long tables (runs, solutions, axis labels, scores), so that
grouped queries over thousands of solutions need not re-read every record.

One job per module: `reading` validates and flattens one record, `index` keeps a directory's index, `where` is the
--where language, `queries` answers queries over one or more indexes (the grouping path the leaderboard and the
report share), `statistics` the summaries, `formatting` the output, `cli` the `dlbench results` command.
`headline` names the headline metrics.

    dlbench results RESULT_DIRS... [--where 'dataset=shapes3d and beta>=8'] [--group beta,lambda]
                    [--pool model] [--metrics mig,sap] [--format table|csv|json] [--include-unverified] [--rebuild]
"""
from __future__ import annotations

from dlbench.results.cli import add_commands, group_fields
from dlbench.results.formatting import format_groups, format_mean_std
from dlbench.results.headline import HEADLINE_METRICS, HeadlineMetric, score_unit
from dlbench.results.index import INDEX_FILE, open_index
from dlbench.results.queries import Group, Results, RunInfo, Solution
from dlbench.results.reading import IDENTITY_FIELDS, RUN_FIELDS, config_hash, load_record
from dlbench.results.where import Condition, parse_where, where_text

__all__ = ["Condition", "Group", "HEADLINE_METRICS", "HeadlineMetric", "IDENTITY_FIELDS", "INDEX_FILE",
           "RUN_FIELDS", "Results", "RunInfo", "Solution", "add_commands", "config_hash", "format_groups",
           "format_mean_std", "group_fields", "load_record", "open_index", "parse_where", "score_unit", "where_text"]
