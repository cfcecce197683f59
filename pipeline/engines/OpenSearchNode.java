// One OpenSearch node on the given HTTP port, for development and tests (pipeline.engines).
// Runs from source (`java -cp <classpath> OpenSearchNode.java BASE_PATH HTTP_PORT CLUSTER_NAME`):
// codelibs' OpenSearchRunner starts the node with OpenSearch's modules as classpath plugins;
// its own main() cannot be used because it refuses HTTP ports above 9299, and tests use free ports.
// Further settings come from BASE_PATH/node_1/config/opensearch.yml, written by the Python side.
// SIGTERM/SIGINT close the node (flushing its shards) before the JVM exits.

import java.util.concurrent.CountDownLatch;

import org.codelibs.opensearch.runner.OpenSearchRunner;

public class OpenSearchNode {
    public static void main(final String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: OpenSearchNode BASE_PATH HTTP_PORT CLUSTER_NAME");
            System.exit(2);
        }
        final int port = Integer.parseInt(args[1]);
        final OpenSearchRunner runner = new OpenSearchRunner();
        runner.setMaxHttpPort(-1); // take HTTP_PORT as given, whatever its number
        final CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                runner.close();
            } catch (final Exception e) {
                System.err.println("newswatch-opensearch: close failed: " + e);
            } finally {
                closed.countDown();
            }
        }));
        try {
            runner.build("-basePath", args[0], "-numOfNode", "1", "-baseHttpPort", String.valueOf(port - 1),
                    "-clusterName", args[2], "-printOnFailure");
        } catch (final RuntimeException e) {
            e.printStackTrace();
            System.exit(1);
        }
        System.out.println("newswatch-opensearch: node started, HTTP on 127.0.0.1:" + port);
        closed.await();
    }
}
