"""The check-in floor: what any check-in with the same work must cost on this machine (bench only).

bench/checkin.py serves it from a second gunicorn, with the production settings and middleware, to
show how close the real endpoint is to the cheapest honest check-in. Never part of the product.
"""
