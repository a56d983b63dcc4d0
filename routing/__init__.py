"""Routing: queues, agents, calls, offers and decisions, and the router that joins them.

Lock order, everywhere a lock is waited for: call, then offer, then agent. Code that takes
locks in another order only ever uses SKIP LOCKED, so it never waits and cannot deadlock.
"""
