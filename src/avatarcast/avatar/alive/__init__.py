"""The face alive on air: blinks, head and body motion, brows and gaze, from a still
picture's own pixels, on the CPU.

    rig.py       what the motion needs of one picture (face size, pivot, head and body
                 weights, the eyes), from its landmarks
    lids.py      the eyes drawn: lids, brows, gaze
    pose.py      the head and body drawn: turned, shifted, breathing
    blinks.py    when the eyes blink
    gestures.py  what the head and brows do with a speech (cues per frame)
    driver.py    the motion track: one pose per tick, from the clock, the state and the cues
    stage.py     the motion put on air, on the pacer thread
"""
