/*
 * Kafka's own admin client for what aiokafka's cannot do: SCRAM users and ACLs.
 *
 * Compiled by estafette/tools/kafka_security.py (`AdminTool`; deploy/local/kafka.sh install has it done,
 * else it happens at first use) into <state>/kafka/admin/kafka-admin.jar and run as
 *
 *     java -cp <state>/kafka/admin/kafka-admin.jar:<state>/kafka/lib/* KafkaAdmin [--config FILE] < request.json
 *
 * The request (stdin, JSON) names the connection and a list of operations, run in order:
 *
 *   {"connection": {"bootstrap.servers": "127.0.0.1:9092", "security.protocol": "SASL_PLAINTEXT",
 *                   "sasl.mechanism": "SCRAM-SHA-512", "sasl.jaas.config": "..."},
 *    "operations": [
 *      {"op": "upsert-scram", "user": "matching", "password": "...", "iterations": 8192},
 *      {"op": "delete-scram", "user": "matching"},
 *      {"op": "describe-scram"},
 *      {"op": "create-acls", "bindings": [BINDING, ...]},
 *      {"op": "delete-acls", "filters": [BINDING, ...]},
 *      {"op": "describe-acls", "filter": BINDING}]}
 *
 *   BINDING = {"principal": "User:matching", "resource_type": "TOPIC", "pattern": "LITERAL",
 *              "name": "estafette.twente.signups.v2", "operation": "READ", "permission": "ALLOW",
 *              "host": "*"}
 *   (in a filter every field may be left out or null: it then matches any value; "pattern" may
 *   also be MATCH: every binding that applies to the name, literal, prefixed or wildcard.)
 *
 * The connection's properties are any Kafka client properties; `--config FILE` reads them from a
 * properties file instead (e.g. <state>/kafka/admin.properties, written by kafka.sh), or adds to them.
 * Passwords travel on stdin only, never on the command line.
 *
 * The answer (stdout, JSON) has one result per operation, in order:
 *   {"results": [{"op": "...", "ok": true, ...}, {"op": "...", "ok": false, "error": "SaslAuthenticationException",
 *                "message": "..."}]}
 * describe-acls adds "bindings": [BINDING, ...]; describe-scram adds "users": {"matching": ["SCRAM-SHA-512"]};
 * delete-acls adds "deleted": the number of bindings removed.
 * Exit code: 0 when every operation succeeded, 1 when one failed (the rest are still tried unless the
 * failure was authentication: then all later ones fail the same way), 2 for a request that is not valid.
 * Logging goes to stderr.
 */

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialDeletion;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.clients.admin.UserScramCredentialsDescription;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.errors.AuthenticationException;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

public final class KafkaAdmin {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int DEFAULT_ITERATIONS = 8192;
    private static final long TIMEOUT_S = 30;

    /** A request that is not valid (exit code 2). */
    static final class BadRequest extends Exception {
        private static final long serialVersionUID = 1L;

        BadRequest(String message) {
            super(message);
        }
    }

    public static void main(String[] args) throws IOException {
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        System.setOut(System.err); // nothing but our answer goes to stdout
        ObjectNode answer = JSON.createObjectNode();
        int code;
        try {
            code = run(args, System.in, answer.putArray("results"));
        } catch (BadRequest e) {
            answer.put("error", "BadRequest").put("message", e.getMessage());
            code = 2;
        }
        out.println(JSON.writeValueAsString(answer));
        out.flush();
        System.exit(code);
    }

    static int run(String[] args, InputStream in, ArrayNode results) throws BadRequest, IOException {
        JsonNode request;
        try {
            request = JSON.readTree(in);
        } catch (IOException e) {
            throw new BadRequest("the request on stdin is not JSON: " + e.getMessage());
        }
        if (request == null || !request.isObject()) {
            throw new BadRequest("the request must be a JSON object");
        }
        Properties props = new Properties();
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--config") && i + 1 < args.length) {
                try (FileInputStream file = new FileInputStream(args[++i])) {
                    props.load(file);
                }
            } else {
                throw new BadRequest("usage: KafkaAdmin [--config FILE] < request.json");
            }
        }
        JsonNode connection = request.path("connection");
        for (Map.Entry<String, JsonNode> e : connection.properties()) {
            props.setProperty(e.getKey(), e.getValue().asText());
        }
        if (!props.containsKey(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG)
                && !props.containsKey(AdminClientConfig.BOOTSTRAP_CONTROLLERS_CONFIG)) {
            throw new BadRequest("no bootstrap.servers (or bootstrap.controllers) in the connection");
        }
        props.putIfAbsent(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        props.putIfAbsent(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
        props.putIfAbsent(AdminClientConfig.CLIENT_ID_CONFIG, "estafette-admin");
        JsonNode operations = request.path("operations");
        if (!operations.isArray()) {
            throw new BadRequest("\"operations\" must be a list");
        }
        Admin created;
        try {
            created = Admin.create(props);
        } catch (KafkaException e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            throw new BadRequest("cannot make an admin client: " + cause.getMessage());
        }
        int code = 0;
        try (Admin admin = created) {
            String authFailure = null;
            for (JsonNode op : operations) {
                ObjectNode result = results.addObject();
                String name = op.path("op").asText("");
                result.put("op", name);
                if (authFailure != null) {
                    result.put("ok", false).put("error", "AuthenticationException").put("message", authFailure);
                    code = 1;
                    continue;
                }
                try {
                    perform(admin, name, op, result);
                    result.put("ok", true);
                } catch (BadRequest e) {
                    throw e;
                } catch (ExecutionException e) {
                    Throwable cause = e.getCause() != null ? e.getCause() : e;
                    fail(result, cause);
                    if (cause instanceof AuthenticationException) {
                        authFailure = String.valueOf(cause.getMessage());
                    }
                    code = 1;
                } catch (Exception e) {
                    fail(result, e);
                    code = 1;
                }
            }
        }
        return code;
    }

    private static void fail(ObjectNode result, Throwable error) {
        result.put("ok", false).put("error", error.getClass().getSimpleName())
            .put("message", String.valueOf(error.getMessage()));
    }

    private static void perform(Admin admin, String name, JsonNode op, ObjectNode result) throws Exception {
        switch (name) {
            case "upsert-scram": {
                String user = text(op, "user");
                String password = text(op, "password");
                int iterations = op.path("iterations").asInt(DEFAULT_ITERATIONS);
                List<UserScramCredentialAlteration> change = List.of(new UserScramCredentialUpsertion(
                    user, new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, iterations), password));
                admin.alterUserScramCredentials(change).all().get(TIMEOUT_S, TimeUnit.SECONDS);
                break;
            }
            case "delete-scram": {
                List<UserScramCredentialAlteration> change = List.of(
                    new UserScramCredentialDeletion(text(op, "user"), ScramMechanism.SCRAM_SHA_512));
                admin.alterUserScramCredentials(change).all().get(TIMEOUT_S, TimeUnit.SECONDS);
                break;
            }
            case "describe-scram": {
                Map<String, UserScramCredentialsDescription> users =
                    admin.describeUserScramCredentials().all().get(TIMEOUT_S, TimeUnit.SECONDS);
                ObjectNode out = result.putObject("users");
                for (UserScramCredentialsDescription d : users.values()) {
                    ArrayNode mechanisms = out.putArray(d.name());
                    for (ScramCredentialInfo info : d.credentialInfos()) {
                        mechanisms.add(info.mechanism().mechanismName());
                    }
                }
                break;
            }
            case "create-acls": {
                List<AclBinding> bindings = new ArrayList<>();
                for (JsonNode b : list(op, "bindings")) {
                    bindings.add(binding(b));
                }
                if (!bindings.isEmpty()) {
                    admin.createAcls(bindings).all().get(TIMEOUT_S, TimeUnit.SECONDS);
                    awaitAcls(admin, bindings, true);
                }
                result.put("created", bindings.size());
                break;
            }
            case "delete-acls": {
                List<AclBindingFilter> filters = new ArrayList<>();
                for (JsonNode f : list(op, "filters")) {
                    filters.add(filter(f));
                }
                int deleted = 0;
                if (!filters.isEmpty()) {
                    Collection<AclBinding> gone = admin.deleteAcls(filters).all().get(TIMEOUT_S, TimeUnit.SECONDS);
                    deleted = gone.size();
                    awaitAcls(admin, gone, false);
                }
                result.put("deleted", deleted);
                break;
            }
            case "describe-acls": {
                Collection<AclBinding> found =
                    admin.describeAcls(filter(op.path("filter"))).values().get(TIMEOUT_S, TimeUnit.SECONDS);
                ArrayNode out = result.putArray("bindings");
                for (AclBinding b : found) {
                    out.add(json(b));
                }
                break;
            }
            default:
                throw new BadRequest("unknown operation " + JSON.writeValueAsString(name)
                    + "; one of upsert-scram, delete-scram, describe-scram, create-acls, delete-acls, describe-acls");
        }
    }

    /**
     * Wait until the broker's authorizer has (or no longer has) `bindings`: the controller commits a
     * change before the broker applies it, and a client using the new ACL right away must not be refused.
     */
    private static void awaitAcls(Admin admin, Collection<AclBinding> bindings, boolean present) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_S);
        while (true) {
            Collection<AclBinding> now = admin.describeAcls(AclBindingFilter.ANY).values().get(TIMEOUT_S, TimeUnit.SECONDS);
            boolean done = present ? now.containsAll(bindings) : bindings.stream().noneMatch(now::contains);
            if (done) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the broker did not apply the ACL change within " + TIMEOUT_S + " s");
            }
            Thread.sleep(50);
        }
    }

    private static String text(JsonNode node, String field) throws BadRequest {
        JsonNode value = node.get(field);
        if (value == null || !value.isTextual() || value.asText().isEmpty()) {
            throw new BadRequest(field + " must be a non-empty string in " + node.path("op").asText("an operation"));
        }
        return value.asText();
    }

    private static JsonNode list(JsonNode node, String field) throws BadRequest {
        JsonNode value = node.get(field);
        if (value == null || !value.isArray()) {
            throw new BadRequest(field + " must be a list in " + node.path("op").asText("an operation"));
        }
        return value;
    }

    private static <E extends Enum<E>> E parse(Class<E> type, JsonNode node, String field, E absent) throws BadRequest {
        JsonNode value = node.get(field);
        if (value == null || value.isNull()) {
            return absent;
        }
        try {
            return Enum.valueOf(type, value.asText().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new BadRequest(field + ": not a " + type.getSimpleName() + ": " + value.asText());
        }
    }

    private static String optional(JsonNode node, String field) {
        JsonNode value = node.get(field);
        return value == null || value.isNull() ? null : value.asText();
    }

    private static AclBinding binding(JsonNode b) throws BadRequest {
        ResourceType type = parse(ResourceType.class, b, "resource_type", null);
        PatternType pattern = parse(PatternType.class, b, "pattern", PatternType.LITERAL);
        AclOperation operation = parse(AclOperation.class, b, "operation", null);
        AclPermissionType permission = parse(AclPermissionType.class, b, "permission", AclPermissionType.ALLOW);
        String name = optional(b, "name");
        String principal = optional(b, "principal");
        String host = optional(b, "host");
        if (type == null || operation == null || name == null || principal == null) {
            throw new BadRequest("a binding needs resource_type, name, principal and operation: " + b);
        }
        return new AclBinding(new ResourcePattern(type, name, pattern),
            new AccessControlEntry(principal, host == null ? "*" : host, operation, permission));
    }

    private static AclBindingFilter filter(JsonNode f) throws BadRequest {
        ResourceType type = parse(ResourceType.class, f, "resource_type", ResourceType.ANY);
        PatternType pattern = parse(PatternType.class, f, "pattern", PatternType.ANY);
        AclOperation operation = parse(AclOperation.class, f, "operation", AclOperation.ANY);
        AclPermissionType permission = parse(AclPermissionType.class, f, "permission", AclPermissionType.ANY);
        return new AclBindingFilter(new ResourcePatternFilter(type, optional(f, "name"), pattern),
            new AccessControlEntryFilter(optional(f, "principal"), optional(f, "host"), operation, permission));
    }

    private static ObjectNode json(AclBinding b) {
        ObjectNode o = JSON.createObjectNode();
        o.put("principal", b.entry().principal());
        o.put("resource_type", b.pattern().resourceType().name());
        o.put("pattern", b.pattern().patternType().name());
        o.put("name", b.pattern().name());
        o.put("operation", b.entry().operation().name());
        o.put("permission", b.entry().permissionType().name());
        o.put("host", b.entry().host());
        return o;
    }
}
