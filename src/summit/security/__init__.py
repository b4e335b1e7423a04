"""Security services of the platform: the user pool (``identity``, like Cognito), IAM-style policies
(``policies``), the audit log (``audit``, like CloudTrail) and password hashing (``passwords``)."""
