"""Watching a running process: sampling (sampler.py), the leak rule (leak.py), the samples kept
for the chart and the chart itself (chart.py), and how a sample is shown (view.py).
`dhlive monitor` (commands/monitor.py) puts them together."""
