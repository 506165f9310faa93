"""OSS: the operator's inventory and operations (terminal licences, numbers, identifiers, …).

The activation path (BSS) takes three things from here for "one device, one code, one
number": an admissible terminal model (:mod:`satiot.oss.terminals`), an IoT number
(:mod:`satiot.oss.numbering`) and an industrial-internet identifier
(:mod:`satiot.oss.identifiers`, registered at the national node by
:mod:`satiot.oss.handle_client`).
"""
