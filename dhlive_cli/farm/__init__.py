"""Render farms: many independent render jobs spread over a pool of long-lived workers.

    jobs.py       JOBS.csv / JOBS.jsonl -> validated Job records (everything checked up front)
    worker.py     JobRenderer: loads the model once, caches avatars, renders one job at a time
                  into a hidden work folder and renames the finished file into place
    local.py      LocalPool: worker processes on this machine (multiprocessing, a pipe each)
    ray_pool.py   RayPool: worker actors on a Ray cluster (optional `farm` extra)
    results.py    DIR/results.jsonl, one line per finished job, and what --resume may skip
    driver.py     BatchRun: feeds a pool, writes results as jobs finish, keeps the tallies that
                  the progress bar and /metrics show

Only job descriptions (paths and options) and small result records travel between the driver
and the workers; audio is read and video written by path, on storage every node can see.
"""
