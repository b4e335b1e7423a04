"""Operations over a whole stage: compliance rules (``summit config check``, ``config_rules``).

A platform layer below the CLI: it reads the blueprint, the control plane's files and the security
package's checks, and changes nothing.
"""
