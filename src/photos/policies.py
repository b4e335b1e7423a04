"""Who may do what in Summit Photos, as IAM policies (evaluated by summit's policy engine).

Every signed-in user gets the baseline; groups get more. Resources are ARNs
(``arn:summit:photos:::post/<id>``); ``photos:ResourceOwner`` is the author's user id.
"""

from __future__ import annotations

BASELINE = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ManageOwnPosts",
            "Effect": "Allow",
            "Action": ["photos:EditPost", "photos:DeletePost"],
            "Resource": "arn:summit:photos:::post/*",
            "Condition": {"StringEquals": {"photos:ResourceOwner": "${aws:userid}"}},
        },
        {
            "Sid": "DeleteOwnComments",
            "Effect": "Allow",
            "Action": "photos:DeleteComment",
            "Resource": "arn:summit:photos:::comment/*",
            "Condition": {"StringEquals": {"photos:ResourceOwner": "${aws:userid}"}},
        },
    ],
}

# Attached to the groups of the same name when the app starts (created if missing).
GROUP_POLICIES = {
    "moderators": (
        "PhotosModerator",
        {"Version": "2012-10-17", "Statement": [
            {"Sid": "Moderate", "Effect": "Allow", "Action": ["photos:DeletePost", "photos:DeleteComment"], "Resource": "*"},
        ]},
    ),
    "admins": (
        "AdministratorAccess",
        {"Version": "2012-10-17", "Statement": [{"Sid": "Everything", "Effect": "Allow", "Action": "*", "Resource": "*"}]},
    ),
}


def post_arn(post_id: int) -> str:
    return f"arn:summit:photos:::post/{post_id}"


def comment_arn(comment_id: int) -> str:
    return f"arn:summit:photos:::comment/{comment_id}"


def owner(user_id: int) -> dict[str, str]:
    return {"photos:ResourceOwner": str(user_id)}
