"""Instrument drivers, emulators and the safety shield of the self-driving lab.

Modules (import them directly; this package imports nothing on its own):

- ``eurotherm``: :class:`EurothermController`, Modbus RTU furnace controller (API in K).
- ``balance``: :class:`MTSICSBalance`, Mettler Toledo MT-SICS balance (g).
- ``stations``: :class:`Mill`, :class:`Press`, :class:`RobotArm` (ASCII line protocol).
- ``xrd``: :class:`XRDFolderDriver`, request/result files in shared folders.
- ``drivers``: the Protocols the shield and the lab need from each driver (``FurnaceDriver``, ...).
- ``shield``: :class:`SafetyShield` (limits, interlock, watchdog, e-stop, dry-run), with
  ``shield_values`` (numbers, names, believable readings), ``interlock``, ``watchdog``,
  ``latch`` (the latched stop) and ``signal_guard`` (SIGINT/SIGTERM).
- ``config``: :class:`LabConfig`, :class:`SafetyLimits`, :class:`LabSettings` and the one
  lab-file reader (``read_lab_file``, ``load_lab_file``).
- ``journal``: append-only JSON-lines :class:`Journal`.
- ``registers``: the one Eurotherm register map; ``errors``: typed exceptions.
- ``lab``: :class:`HardwareLab`, the ``Lab`` protocol on these drivers, behind the shield; its
  parts: ``backend`` (the instruments, which only execute), ``lab_shield`` (dose, tare, XRD
  commands), ``campaign_state`` (lab clock, campaign id and count, resume), ``programme``
  (furnace programme execution).
- ``emulators``: pty emulators of every serial instrument and of a whole lab, ``synthgap emulate``.
- ``testing``: :class:`ScriptedPort` / ``expected_protocol`` for byte-exact tests.
"""
