// Every object in the given YAML files against its Kubernetes schema
// (kubernetes-models' bundled OpenAPI schemas, offline), plus the checks a
// schema cannot make: the fields the deployment issue requires.
import fs from 'node:fs';
import YAML from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Service } from 'kubernetes-models/v1/Service';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';

const kinds = {
  'apps/v1/Deployment': Deployment, 'v1/Service': Service, 'v1/ConfigMap': ConfigMap,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim, 'batch/v1/Job': Job,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
};

function requireThat(ok, what) { if (!ok) throw new Error(what); }

// What the issue asks of the serving Deployment and the training Job.
function policy(o) {
  const pod = o.kind === 'Deployment' || o.kind === 'Job' ? o.spec.template.spec : null;
  if (!pod) return;
  requireThat(pod.securityContext?.runAsNonRoot === true, 'pod must run as non-root');
  for (const c of pod.containers) {
    requireThat(c.securityContext?.readOnlyRootFilesystem === true, `${c.name}: read-only root filesystem`);
    requireThat(c.resources?.requests && c.resources?.limits, `${c.name}: resource requests and limits`);
    requireThat((c.volumeMounts || []).some(m => m.mountPath === '/var/lib/mnistd'),
      `${c.name}: the model store on a volume at /var/lib/mnistd`);
  }
  if (o.kind === 'Deployment') {
    requireThat(o.spec.replicas >= 2, 'at least 2 replicas');
    const c = pod.containers[0];
    requireThat(c.readinessProbe?.httpGet?.path === '/v2/health/ready', 'readiness probe on /v2/health/ready');
    requireThat(c.livenessProbe?.httpGet?.path === '/v2/health/live', 'liveness probe on /v2/health/live');
  }
}

let bad = 0;
for (const f of process.argv.slice(2)) {
  for (const d of YAML.parseAllDocuments(fs.readFileSync(f, 'utf8'))) {
    if (d.errors.length) { bad++; console.log(`${f}: YAML error: ${d.errors[0].message}`); continue; }
    const o = d.toJS();
    if (!o) continue;
    const K = kinds[`${o.apiVersion}/${o.kind}`];
    try {
      if (!K) throw new Error(`no schema for ${o.apiVersion} ${o.kind}`);
      new K(o).validate();
      policy(o);
      console.log(`${f}: ${o.kind} ${o.metadata?.name ?? o.metadata?.generateName} OK`);
    } catch (e) {
      bad++;
      console.log(`${f}: ${o.kind} INVALID: ${e.message}`);
    }
  }
}
process.exit(bad ? 1 : 0);
