"""The read side: ranges, totals, breakdowns, live days and realtime. No Flask here."""
