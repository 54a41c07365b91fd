"""The admin console: an urwid menu on the satellite's console (tty1, serial).

Controllers (controller.py) do the work through services/, in-process, so the console works
while the bridge service is down; views (views.py) only build widgets; keys map to named
actions (keys.py), so every action can be run and tested without a keystroke.
"""
