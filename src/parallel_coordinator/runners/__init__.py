"""Runners turn an agent and a task into a process to start, and its outcome into a result.

Pool workers import `runners.streams`, so this package must stay import-light.
"""
