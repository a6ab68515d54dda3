"""A live lab: drive the real /dev/kvm through the lifecycle the site traces.

Standard library only, so `python -m kvmlab` runs on any Linux host with
Python 3.11, and every step can point at the page that reads the v3.8 code.
"""
