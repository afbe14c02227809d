#!/usr/bin/env python3
"""A scripted stand-in for an AI coding agent, for forgelink's demo and tests.

Inside a forgelink run it does what a coding agent does on GitLab: edits a file, commits, pushes a new
branch, opens a merge request and files an issue. It uses only what forgelink gives every run:
GITLAB_TOKEN, GITLAB_OAUTH_BASE_URL, the clone in the current directory, and the egress proxy
(urllib and git read HTTPS_PROXY from the environment). With a token that cannot use the API
(write_repository only) it opens the merge request with git push options instead, and files no issue.
"""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

BASE = os.environ["GITLAB_OAUTH_BASE_URL"]
TOKEN = os.environ["GITLAB_TOKEN"]
RUN = os.environ.get("FORGELINK_RUN_ID", "local")


def git(*args, capture=False):
    print("$ git " + " ".join(args), flush=True)
    result = subprocess.run(["git", *args], check=True, text=True, capture_output=capture)
    return result.stdout.strip() if capture else None


def api(method, path, body=None):
    request = urllib.request.Request(
        f"{BASE}/api/v4{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        # Bearer works for personal access tokens and OAuth tokens alike; PRIVATE-TOKEN only for the former.
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def scopes():
    try:
        return api("GET", "/personal_access_tokens/self")["scopes"]
    except urllib.error.HTTPError:
        pass
    # Not a personal access token (GitLab answers 400 above): an OAuth token tells its scopes at
    # /oauth/token/info, outside /api/v4 (GitLab docs: api/oauth2.md).
    request = urllib.request.Request(f"{BASE}/oauth/token/info", headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response).get("scope", [])
    except urllib.error.HTTPError:
        return []


def main():
    target = git("rev-parse", "--abbrev-ref", "HEAD", capture=True)
    remote = git("remote", "get-url", "origin", capture=True)
    project = urllib.parse.quote(remote[len(BASE) + 1 :].removesuffix(".git"), safe="")
    branch = f"agent/{RUN}"
    title = f"Agent notes from run {RUN}"

    git("checkout", "-b", branch)
    with open("AGENT_NOTES.md", "a", encoding="utf-8") as notes:
        notes.write(f"\n## Run {RUN}\n\nThe scripted agent was here at {time.strftime('%Y-%m-%d %H:%M:%S')}.\n")
    git("add", "AGENT_NOTES.md")
    git("commit", "--quiet", "-m", title)

    if "api" in scopes():
        git("push", "--quiet", "origin", branch)
        for attempt in range(5):
            try:
                mr = api("POST", f"/projects/{project}/merge_requests", {
                    "source_branch": branch, "target_branch": target, "title": title,
                    "description": "Opened by forgelink's scripted example agent.", "remove_source_branch": True,
                })
                break
            except urllib.error.HTTPError as error:
                # Right after a push GitLab may not see the branch yet (docs/gitlab.md): retry with backoff.
                if error.code != 400 or attempt == 4:
                    raise
                time.sleep(0.5 * 2**attempt)
        print(f"Opened merge request !{mr['iid']}: {mr['web_url']}", flush=True)
        issue = api("POST", f"/projects/{project}/issues", {
            "title": f"Follow-up from run {RUN}", "description": f"See merge request !{mr['iid']}.",
        })
        print(f"Filed issue #{issue['iid']}: {issue['web_url']}", flush=True)
    else:
        # The token can only push: git push options ask GitLab to open the merge request.
        git("push", "origin", branch,
            "-o", "merge_request.create", "-o", f"merge_request.target={target}",
            "-o", f"merge_request.title={title}",
            "-o", "merge_request.description=Opened by forgelink's scripted example agent.")
        print("This token cannot use the API: no issue filed.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
