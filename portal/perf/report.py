"""The benchmark's report: JSON for the record, a short table for people."""
from __future__ import annotations

import json
import sys
from pathlib import Path

def format_table(report: dict) -> str:
    """The report as a short table for people; the JSON is the record."""
    rows = [("database", report["database"])]
    machine = report.get("machine")
    if machine:
        after = machine.get("loadavg_after")
        rows.append(("machine", f"{machine['cpu_count']} CPUs, load average {_loadavg(machine['loadavg_before'])} "
                                f"before" + (f", {_loadavg(after)} after" if after else "")))
    http = report.get("http")
    if http:
        rows.append(("HTTP server / load", f"{http['server']}; {http['load']}"))
        if http.get("logged_in"):
            rows.append(("cookie", "every portal request sent a logged-in customer's session cookie"))
        for key, label in (("flask_floor", "bare Flask \"ok\" (the floor)"), ("healthz", "/healthz"),
                           ("static_page", f"portal, static {http.get('static_page_bytes', 0):,} bytes"),
                           ("billing_page", "GET /billing (2,000 invoices, 10 cards)"),
                           ("set_default_partial", "POST set-default, HTMX partial")):
            f = http.get(key)
            if f is None:
                continue
            ratios = []
            if "rps_ratio_to_healthz" in f:
                ratios.append(f"{f['rps_ratio_to_healthz']:.1%} of /healthz")
            if "rps_ratio_to_floor" in f and f["rps_ratio_to_floor"] is not None:
                ratios.append(f"{f['rps_ratio_to_floor']:.1%} of the floor")
            ratio = f" ({', '.join(ratios)})" if ratios else ""
            errors = f.get("status_4xx", 0) + f.get("status_5xx", 0) + f["socket_errors"]
            rows.append((label, f"{f['rps']:.0f} req/s{ratio}, p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms"
                                + (f", {errors} errors" if errors else "")))
        rows.append(("response bytes", f"page {http['page_bytes']:,}, partial {http['partial_bytes']:,}"))
    elif "http_skipped" in report:
        rows.append(("HTTP", f"skipped: {report['http_skipped']}"))
    if "queries_billing_page_5" in report:  # not with --only renewals
        rows += [
            ("SQL statements per page", f"{report['queries_billing_page_5']} (5 invoices), "
                                        f"{report['queries_billing_page_2000']} (2,000 invoices)"),
            ("PDF p50", f"{report['pdf_ms_p50']} ms cold, {report['pdf_cached_ms_p50']} ms cached"
                        + (f"; {report['pdf_bytes']:,} bytes" if "pdf_bytes" in report else "")
                        + (f"; Chinese name {report['pdf_ms_p50_cjk']} ms cold, {report['pdf_bytes_cjk']:,} bytes"
                           if "pdf_ms_p50_cjk" in report else "")),
        ]
    cpu = report.get("renewals_per_cpu_s")
    rows.append(("renewals/s", f"{report['renewals_per_s']} in-process ({report['renewals_measured']} due)"
                               + (f"; {cpu} per CPU-second" if cpu else "")
                               + (f"; {report['renewal_statements_per_renewal']} SQL statements per renewal"
                                  if "renewal_statements_per_renewal" in report else "")))
    if "renewals_per_s_1_worker" in report:
        four = report["renewals_per_s_4_workers"]
        ratio = report.get("renewals_4_workers_ratio_to_1")
        rows.append(("renewals/s, processes", f"1 worker {report['renewals_per_s_1_worker']}, "
                                              f"4 workers {four if four is not None else 'n/a (SQLite)'}"
                                              + (f" ({ratio}x one)" if ratio else "")))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def _loadavg(values) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def write_report(report: dict, table: str, json_path: str | None) -> None:
    """JSON to the file (or stdout), the human table to stderr, so the JSON can be piped on."""
    text = json.dumps(report, indent=2)
    if json_path:
        Path(json_path).write_text(text + "\n")
    else:
        print(text)
    print(table, file=sys.stderr)
