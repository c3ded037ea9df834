"""The bed's AWS side in moto, made with boto3 (the real SDK) as an install would make it: the
real nodes' cluster VPC (10.250.0.0/16, the bed's bridge), one subnet per zone, one instance per
real node at the node's own address (its providerID) whose interface carries the cluster tag as a
launch template puts it there, and the private hosted zone
`<cluster>-firecamp.com` that CoreDNS serves to pods. Prints shell export lines; writes
`node-<i> <instance id>` lines to the instances file.

usage: bed_aws.py ENDPOINT REGION CLUSTER ZONES INSTANCES_FILE node-<i>,<zone>,<ip>...
"""
import sys

import boto3

endpoint, region, cluster, zones, instances_file = sys.argv[1:6]
nodes = [n.split(",") for n in sys.argv[6:]]
zones = zones.split(",")
kw = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
ec2, r53 = boto3.client("ec2", **kw), boto3.client("route53", **kw)
# FireCamp finds its subnets by this tag (docs/aws.md); the second marks what the bed made.
tags = [{"Key": "firecamp-cluster", "Value": cluster}, {"Key": "firecamp:testbed", "Value": cluster}]

vpc = ec2.create_vpc(CidrBlock="10.250.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": tags}])["Vpc"]["VpcId"]
subnets = {}
for i, z in enumerate(zones):
    subnets[z] = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.250.{16 + i}.0/24", AvailabilityZone=z,
                                   TagSpecifications=[{"ResourceType": "subnet", "Tags": tags}])["Subnet"]["SubnetId"]
with open(instances_file, "w") as f:
    for name, zone, ip in nodes:
        # The node group's launch template tags its nodes' network interfaces with the cluster
        # tag (docs/aws.md): FireCamp moves static IPs only onto interfaces that carry it.
        inst = ec2.run_instances(ImageId="ami-12c6146b", InstanceType="m5.large", MinCount=1, MaxCount=1,
                                 SubnetId=subnets[zone], PrivateIpAddress=ip,
                                 TagSpecifications=[{"ResourceType": "instance", "Tags": tags + [{"Key": "Name", "Value": name}]},
                                                    {"ResourceType": "network-interface", "Tags": tags}])["Instances"][0]
        # moto 5.2.5 ignores the network-interface tag specification of RunInstances (AWS
        # applies it): tag the interfaces as AWS would have.
        ec2.create_tags(Resources=[n["NetworkInterfaceId"] for n in inst["NetworkInterfaces"]], Tags=tags)
        f.write(f"{name} {inst['InstanceId']}\n")

# The private hosted zone, as `firecamp install aws-zone` makes it at install time (the manage
# service only finds it).
domain = f"{cluster}-firecamp.com."
zone = r53.create_hosted_zone(Name=domain, CallerReference=f"firecamp-testbed-{cluster}-{vpc}",
                              VPC={"VPCRegion": region, "VPCId": vpc},
                              HostedZoneConfig={"Comment": "FireCamp member DNS (test bed)", "PrivateZone": True})["HostedZone"]["Id"]
# moto 5.2.5 stores a new zone's SOA as a stringified dict ("{'Value': 'ns-2048… 86400'}"), which
# no DNS server parses; AWS's is the plain value. Put the plain one back, as AWS has it.
for rr in r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]:
    value = rr["ResourceRecords"][0]["Value"] if rr["Type"] == "SOA" else ""
    if value.startswith("{"):
        plain = value.split("'Value': '", 1)[1].rsplit("'", 1)[0]
        r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
            "Name": rr["Name"], "Type": "SOA", "TTL": rr["TTL"], "ResourceRecords": [{"Value": plain}]}}]})
print(f"export FIRECAMP_TESTBED_REAL_CLUSTER={cluster} FIRECAMP_TESTBED_VPC={vpc} "
      f"FIRECAMP_TESTBED_ZONE_ID={zone.split('/')[-1]} FIRECAMP_TESTBED_AWS_ENDPOINT={endpoint}")
