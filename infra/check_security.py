#!/usr/bin/env python3
"""Asserts the security properties of repovault's CloudFormation templates.

  - every S3 bucket blocks public access (all four settings), is encrypted, and is
    versioned;
  - every bucket has a policy denying requests without TLS (aws:SecureTransport false),
    covering the bucket and its objects;
  - every SQS queue is encrypted;
  - no IAM role or policy allows a wildcard action ("*" or "service:*") on the "*"
    resource, and none allows the action "*" at all;
  - no role may delete object versions (versioning is the undo of a delete), and
    a role's s3:DeleteObject never reaches the runs/ records;
  - when the template takes a KMS key (a KmsKeyArn parameter), every role that reads
    the secret, the queues or the bucket may use it (kms:Decrypt);
  - no secret value in any environment (a Lambda function's or a container's): no
    `{{resolve:secretsmanager:…}}` or `{{resolve:ssm-secure:…}}`, no NoEcho parameter,
    and nothing named like a secret (SECRET, TOKEN, PASSWORD, PRIVATE_KEY) unless the
    name says it is a reference to one (…_ARN, …_FILE, …_NAME, …_ID). Anyone allowed
    lambda:GetFunctionConfiguration or ecs:DescribeTaskDefinition reads environments;
  - every function behind a public Function URL (AuthType NONE) has reserved
    concurrency, so a flood cannot take the account's shared Lambda concurrency.

Usage: check_security.py TEMPLATE...                      exit 1 on any violation
       check_security.py --expect-violations TEMPLATE...  exit 1 unless each has some
(the second form keeps the checker honest against a deliberately insecure template).
"""
import json
import re
import sys

from cfnlint.decode import decode

SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PRIVATE_KEY", re.IGNORECASE)
REFERENCE_SUFFIXES = ("_ARN", "_FILE", "_NAME", "_ID")


def as_list(value):
    return value if isinstance(value, list) else [value]


def resources(template, kind):
    for name, res in (template.get("Resources") or {}).items():
        if res.get("Type") == kind:
            yield name, res.get("Properties") or {}


def refers_to(value, bucket):
    """Whether an intrinsic (Ref / GetAtt / Sub) names the bucket resource."""
    if isinstance(value, dict):
        if value.get("Ref") == bucket:
            return True
        getatt = value.get("Fn::GetAtt")
        if getatt and as_list(getatt)[0] in (bucket, f"{bucket}.Arn"):
            return True
        sub = value.get("Fn::Sub")
        if sub:
            text = sub if isinstance(sub, str) else sub[0]
            return "${" + bucket in text
        return any(refers_to(v, bucket) for v in value.values())
    if isinstance(value, list):
        return any(refers_to(v, bucket) for v in value)
    return False


def resource_text(resource):
    """A resource ARN as written: a string, or the text of its !Sub."""
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        sub = resource["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    return str(resource)


def unconditional(stmt):
    """A statement inside `!If [cond, stmt, AWS::NoValue]`, as if the condition held."""
    if isinstance(stmt, dict) and "Fn::If" in stmt:
        return stmt["Fn::If"][1]
    return stmt


def environments(template):
    """Every environment variable a resource sets: (resource, variable, value)."""
    for name, res in (template.get("Resources") or {}).items():
        props = res.get("Properties") or {}
        env = props.get("Environment")
        if isinstance(env, dict):
            for variable, value in (env.get("Variables") or {}).items():
                yield name, variable, value
        for container in as_list(props.get("ContainerDefinitions") or []):
            container = unconditional(container)
            if not isinstance(container, dict):
                continue
            for entry in as_list(container.get("Environment") or []):
                entry = unconditional(entry)
                if isinstance(entry, dict):
                    yield name, entry.get("Name"), entry.get("Value")


def refs(value):
    """The names a value refers to with Ref or ${...} in a Sub."""
    if isinstance(value, dict):
        found = set()
        if isinstance(value.get("Ref"), str):
            found.add(value["Ref"])
        sub = value.get("Fn::Sub")
        if sub:
            text = sub if isinstance(sub, str) else sub[0]
            found.update(n.split(".")[0] for n in re.findall(r"\$\{([^}!]+)\}", text))
        for v in value.values():
            found |= refs(v)
        return found
    if isinstance(value, list):
        return set().union(*[refs(v) for v in value]) if value else set()
    return set()


def secret_in_environment(template):
    problems = []
    no_echo = {n for n, p in (template.get("Parameters") or {}).items() if str(p.get("NoEcho")).lower() == "true"}
    for resource, variable, value in environments(template):
        text = json.dumps(value)
        if "{{resolve:secretsmanager:" in text or "{{resolve:ssm-secure:" in text:
            problems.append(f"{resource}: environment variable {variable} holds a secret resolved at deploy time")
        elif refs(value) & no_echo:
            problems.append(f"{resource}: environment variable {variable} holds a NoEcho parameter")
        elif isinstance(variable, str) and SECRET_NAME.search(variable) and not variable.upper().endswith(REFERENCE_SUFFIXES):
            problems.append(f"{resource}: environment variable {variable} is named like a secret (pass its ARN, or a file)")
    return problems


def function_named(value):
    """The function resource a TargetFunctionArn names (!Ref F or !GetAtt F.Arn)."""
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            return value["Ref"]
        getatt = value.get("Fn::GetAtt")
        if getatt:
            return as_list(getatt)[0].split(".")[0] if isinstance(getatt, str) else getatt[0]
    return None


def unreserved_public_functions(template):
    problems = []
    functions = dict(resources(template, "AWS::Lambda::Function"))
    for url, props in resources(template, "AWS::Lambda::Url"):
        if props.get("AuthType") != "NONE":
            continue
        target = function_named(props.get("TargetFunctionArn"))
        reserved = (functions.get(target) or {}).get("ReservedConcurrentExecutions")
        if reserved is None or (isinstance(reserved, int) and reserved <= 0):
            problems.append(f"function {target} behind the public Function URL {url}: no ReservedConcurrentExecutions")
    return problems


def check(template):
    problems = secret_in_environment(template) + unreserved_public_functions(template)
    policies = [p for _, p in resources(template, "AWS::S3::BucketPolicy")]
    for name, props in resources(template, "AWS::S3::Bucket"):
        block = props.get("PublicAccessBlockConfiguration") or {}
        for setting in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
            if block.get(setting) is not True:
                problems.append(f"bucket {name}: PublicAccessBlockConfiguration.{setting} is not true")
        rules = ((props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration")) or []
        if not any((r.get("ServerSideEncryptionByDefault") or {}).get("SSEAlgorithm") for r in rules):
            problems.append(f"bucket {name}: no default encryption")
        if (props.get("VersioningConfiguration") or {}).get("Status") != "Enabled":
            problems.append(f"bucket {name}: versioning is not enabled")
        tls_only = False
        for policy in policies:
            if not refers_to(policy.get("Bucket"), name):
                continue
            for stmt in as_list((policy.get("PolicyDocument") or {}).get("Statement") or []):
                condition = ((stmt.get("Condition") or {}).get("Bool") or {}).get("aws:SecureTransport")
                actions = as_list(stmt.get("Action") or [])
                resources_ = as_list(stmt.get("Resource") or [])
                if (
                    stmt.get("Effect") == "Deny"
                    and str(condition).lower() == "false"
                    and ("s3:*" in actions or "*" in actions)
                    and len(resources_) >= 2
                ):
                    tls_only = True
        if not tls_only:
            problems.append(f"bucket {name}: no policy denies requests without TLS to the bucket and its objects")
    for name, props in resources(template, "AWS::SQS::Queue"):
        if not props.get("SqsManagedSseEnabled") and not props.get("KmsMasterKeyId"):
            problems.append(f"queue {name}: not encrypted")
    documents = []
    for kind in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for name, props in resources(template, kind):
            if kind == "AWS::IAM::Role":
                for inline in props.get("Policies") or []:
                    documents.append((f"{name}/{inline.get('PolicyName')}", inline.get("PolicyDocument") or {}))
            else:
                documents.append((name, props.get("PolicyDocument") or {}))
    uses_kms = "KmsKeyArn" in (template.get("Parameters") or {})
    for where, document in documents:
        statements = [unconditional(s) for s in as_list(document.get("Statement") or [])]
        statements = [s for s in statements if isinstance(s, dict)]
        granted = {a for s in statements if s.get("Effect") == "Allow" for a in as_list(s.get("Action") or [])}
        touches_encrypted = any(a.split(":")[0] in ("s3", "sqs", "secretsmanager") for a in granted if isinstance(a, str))
        if uses_kms and touches_encrypted and "kms:Decrypt" not in granted:
            problems.append(f"IAM {where}: KmsKeyArn is a parameter but the role may not kms:Decrypt")
        for stmt in statements:
            if stmt.get("Effect") != "Allow":
                continue
            actions_ = [a for a in as_list(stmt.get("Action") or []) if isinstance(a, str)]
            if "s3:DeleteObjectVersion" in actions_:
                problems.append(f"IAM {where}: may delete object versions")
            if "s3:DeleteObject" in actions_ and not all("/repos/" in resource_text(r) for r in as_list(stmt.get("Resource") or [])):
                problems.append(f"IAM {where}: s3:DeleteObject reaches beyond the archives (repos/)")
        for stmt in statements:
            if stmt.get("Effect") != "Allow":
                continue
            actions = [a for a in as_list(stmt.get("Action") or []) if isinstance(a, str)]
            resources_ = as_list(stmt.get("Resource") or [])
            if "*" in actions:
                problems.append(f"IAM {where}: allows every action (\"*\")")
            wildcard = [a for a in actions if a == "*" or a.endswith(":*")]
            if wildcard and "*" in resources_:
                problems.append(f"IAM {where}: allows {', '.join(wildcard)} on every resource")
    return problems


def main(argv):
    expect = "--expect-violations" in argv
    paths = [a for a in argv if a != "--expect-violations"]
    failed = False
    for path in paths:
        template, errors = decode(path)
        if errors or template is None:
            print(f"{path}: cannot parse: {errors}")
            failed = True
            continue
        problems = check(template)
        if expect:
            if problems:
                print(f"{path}: {len(problems)} violation(s) found, as expected")
            else:
                print(f"{path}: expected violations, found none: the checker is broken")
                failed = True
        else:
            for p in problems:
                print(f"{path}: {p}")
            if problems:
                failed = True
            else:
                print(f"{path}: security properties hold")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
