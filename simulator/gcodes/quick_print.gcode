; moonraker-prometheus simulator: a short print that completes without pausing.
; It runs in a few seconds (live) or well under a second (batch mode).
; estimated printing time (normal mode) = 45s
; filament used [mm] = 20.0
EXCLUDE_OBJECT_DEFINE NAME=pin_1 CENTER=120,120 POLYGON=[[115,115],[125,115],[125,125],[115,125]]
SET_PRINT_STATS_INFO TOTAL_LAYER=2
M104 S200
M140 S55
; homed without motion so that a test reaches its state in a second
; (cube_5_layers.gcode homes with G28 in real time)
SET_KINEMATIC_POSITION X=125 Y=125 Z=10
G90
M83
SET_PRINT_STATS_INFO CURRENT_LAYER=1
EXCLUDE_OBJECT_START NAME=pin_1
G1 Z0.3 F600
G1 X115 Y115 F6000
G1 X125 Y115 E0.6 F1800
G1 X125 Y125 E0.6
G1 X115 Y125 E0.6
G1 X115 Y115 E0.6
SET_PRINT_STATS_INFO CURRENT_LAYER=2
G1 Z0.5 F600
G1 X125 Y115 E0.6 F1800
G1 X125 Y125 E0.6
G1 X115 Y125 E0.6
G1 X115 Y115 E0.6
EXCLUDE_OBJECT_END NAME=pin_1
M104 S0
M140 S0
G1 Z10 F600
