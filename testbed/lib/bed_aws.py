"""The bed's AWS side in moto, made with boto3 (the real SDK) as an install would make it:
the cluster's VPC, one subnet per zone, and the private hosted zone `<cluster>-firecamp.com`
that CoreDNS serves to pods. Idempotent: an existing VPC/zone tagged for the cluster is reused.
Prints shell export lines."""
import sys

import boto3

endpoint, region, cluster, zones = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
kw = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
ec2, r53 = boto3.client("ec2", **kw), boto3.client("route53", **kw)
tag = {"Key": "firecamp:testbed", "Value": cluster}
vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:firecamp:testbed", "Values": [cluster]}])["Vpcs"]
if vpcs:
    vpc = vpcs[0]["VpcId"]
else:
    vpc = ec2.create_vpc(CidrBlock="10.250.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": [tag]}])["Vpc"]["VpcId"]
    for i, z in enumerate(zones):
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.250.{16 + i}.0/24", AvailabilityZone=z,
                          TagSpecifications=[{"ResourceType": "subnet", "Tags": [tag]}])
domain = f"{cluster}-firecamp.com."
found = [z for z in r53.list_hosted_zones_by_name(DNSName=domain)["HostedZones"] if z["Name"] == domain and z["Config"]["PrivateZone"]]
if found:
    zone = found[0]["Id"]
else:
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
print(f"export FIRECAMP_TESTBED_REAL_CLUSTER={cluster} FIRECAMP_TESTBED_VPC={vpc} FIRECAMP_TESTBED_ZONE_ID={zone.split('/')[-1]} FIRECAMP_TESTBED_AWS_ENDPOINT={endpoint}")
